# make sanitize / make valgrind: the C tests under gcc's sanitizers and memcheck (issue 8).
# Included by the top-level Makefile.
