"""latentmap's web layer and CLI: settings, registry, job runner, HTTP routes, pages."""
