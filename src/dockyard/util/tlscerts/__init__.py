"""Certificates for remote access over mutual TLS: a CA, the daemon's server
certificate and clients' certificates, in the ``~/.docker`` file layout."""
