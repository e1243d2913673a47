"""The two Flower components that `flwr run` loads in a deployment (named in the app's pyproject.toml that
`reku federate --superlink` writes): they read the run config from Flower's Context (reku.model.federate)."""
from .federate import make_client_app, make_server_app

server_app = make_server_app()
client_app = make_client_app()
