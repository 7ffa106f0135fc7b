"""``dockyard``: the docker command line re-made on docker-py.

Layout, one module per concern:

- ``main``: global flags, error-to-exit-status mapping, the entry point; ``MODULES`` lists the
  resource modules whose ``register(tree)`` adds their commands. Nothing imports ``main``.
- ``command``: ``Cli`` (what a handler is given) and the argparse tree shaped like docker's
  cobra commands (aliases such as ``images`` / ``image ls``, argument counts, ``--flag=false``
  booleans, exit 125 on bad flags).
- ``common``: the helpers several command modules share (flag values, image references,
  inspect output, natural name order), public here rather than private to one of them.
- ``connection``: ``-H``/``DOCKER_HOST`` and TLS flags/variables to a docker-py client; the
  few raw calls docker-py lacks.
- ``output`` (docker's formatter: table/json/template, tabwriter, units, times),
  ``gotemplate`` (the Go-template subset), ``structview`` (daemon JSON seen as a Go struct),
  ``jsonmessage`` (progress streams), ``config`` (the docker CLI's config.json).
- Resources: ``images``, ``system``, ``inspect``, ``remote``, ``containers_list`` (ps),
  ``containers_run`` (create, run, start, attach, exec), ``containers_manage`` (stop, rm, logs,
  ...), ``networks``, ``volumes``, ... A new resource is a module with formatter ``Context``
  subclasses for its listings, handlers ``def cmd_x(cli, ns)`` and a ``register(tree)``, added
  to ``MODULES``.
"""
