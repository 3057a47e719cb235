"""JupyterHub config of the integration tests: the reference config, on ports of our own."""

import os

c = get_config()  # noqa: F821
load_subconfig(os.environ["ONDEMAND_HUB_REFERENCE_CONFIG"])  # noqa: F821
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['ONDEMAND_HUB_PROXY_API_PORT']}"
