"""The Dockerfile language: directives, parser, word lexer (moby's dockerfile/parser).

A leaf package: it knows the syntax and nothing about building, so image
commit/import ``--change`` reads instructions with it as the builder does.
"""
