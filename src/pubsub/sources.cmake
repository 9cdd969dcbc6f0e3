# netframe — pub/sub topics with encode-once fan-out (docs/pubsub.md): the
# hub of one loop and the group that joins the hubs of several loops.
# Included from the top-level CMakeLists.txt; paths are relative to the
# project root.
list(APPEND NF_SOURCES
  src/pubsub/hub.c
  src/pubsub/group.c
)
