"""The validation gate (N-ANON): Great Expectations suites that prove a statistics build holds no
identifying data before it is published.

- `suites`: the versioned suites in `expectations/`, generated from the table definitions;
- `expectations`: the custom GX expectations (identifier detectors, known identifiers, k, cell
  suppression);
- `known_identifiers`: the in-memory index of names, emails, usernames, phones and companies;
- `gate`: runs the suites on staging, records the outcome, builds the Data Docs.
"""
