"""The session's tiny trained proxies (tests/proxy_fixtures.py) for the planning tests."""

from tests.proxy_fixtures import gpt2_proxy, llama_proxy, one_torch_thread  # noqa: F401
