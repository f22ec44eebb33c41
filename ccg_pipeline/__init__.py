"""CCG privacy pipeline: the Airflow-free core that the DAGs in `dags/` call into."""

__version__ = "0.1.0"
