"""The Falcon layer: app composition, middleware, errors, policy, one sub-package per API.

Nothing is re-exported here, so that importing one API (``nimbus.api.identity``)
does not import the others; import the modules themselves.
"""

__all__: list[str] = []
