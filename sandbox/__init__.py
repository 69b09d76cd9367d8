"""The sandbox AWS: a development and test tool (`manage.py krp sandbox`), not part of the
domain. Nothing in provisioning/ knows it is talking to a sandbox."""
