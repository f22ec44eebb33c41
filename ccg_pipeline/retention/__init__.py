"""Retention (N-RET, N-ANON): deadlines, legal holds, the anonymise-then-delete sweep."""
