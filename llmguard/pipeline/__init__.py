"""One user call, start to end: the generator of steps and its sync/async drivers."""
