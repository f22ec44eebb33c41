"""Deployment support shared by `docker-compose.yml` and the native deployment test."""
