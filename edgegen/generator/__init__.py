"""The generator: solution on disk (.env, module.json, image tags), rendering and validation."""
