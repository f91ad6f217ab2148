"""One folder per domain: resource.py (specs), schemas.py, service.py, endpoints.py, jobs.py.

Every package here is imported by :func:`courier.app.load_domains`; adding a domain is adding
a folder.
"""
