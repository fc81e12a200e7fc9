"""Registry client (login; later pull and push) and registry server."""
