# (filled in by the repl work)
