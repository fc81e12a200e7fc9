"""dockyard: a container platform that speaks the Docker Engine API."""
