"""Heap allocations by site from a heaptrack flame-graph file (`heaptrack_print -F`), for the bench scripts."""

import collections

# Frames of the allocator and the Swift runtime and standard library: the site is the nearest frame below them.
RUNTIME = ("malloc", "calloc", "realloc", "posix_memalign", "operator new", "swift_", "swift::", "_swift", "$ss", "$sS", "__")


def sites(path, width=None):
    """Cost by site: the two frames nearest the allocation outside the runtime (each cut to `width`)."""
    counts = collections.Counter()
    for line in open(path):
        stack, count = line.rstrip("\n").rsplit(" ", 1)
        frames = [f for f in reversed(stack.split(";")) if f and not f.startswith(RUNTIME)]
        counts[" < ".join(f[:width] for f in frames[:2])] += int(count)
    return counts
