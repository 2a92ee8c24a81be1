"""Model-side pure functions and loaders. No Lightning here: everything works from a notebook with torch alone."""
