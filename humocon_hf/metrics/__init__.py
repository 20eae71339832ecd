"""evaluate metric modules shipped with the package (load them offline with evaluate.load(path))."""
