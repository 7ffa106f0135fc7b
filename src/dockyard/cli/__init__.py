"""``dockyard``: the docker command line re-made on docker-py.

Layout, one module per concern:

- ``main``: global flags, connection, error-to-exit-status mapping; ``MODULES`` lists the
  resource modules whose ``register(tree)`` adds their commands.
- ``command``: the argparse tree shaped like docker's cobra commands (aliases such as
  ``images`` / ``image ls``, argument counts, ``--flag=false`` booleans, exit 125 on bad flags).
- ``connection``: ``-H``/``DOCKER_HOST`` and TLS flags/variables to a docker-py client; the
  few raw calls docker-py lacks.
- ``output`` (docker's formatter: table/json/template, tabwriter, units, times),
  ``gotemplate`` (the Go-template subset), ``structview`` (daemon JSON seen as a Go struct),
  ``jsonmessage`` (progress streams), ``config`` (the docker CLI's config.json).
- Resources: ``images``, ``system``, ``inspect``, ``remote``. A new resource (containers,
  networks, volumes, ...) is a module with formatter ``Context`` subclasses for its listings,
  handlers ``def cmd_x(cli, ns)`` and a ``register(tree)``, added to ``MODULES``.
"""
