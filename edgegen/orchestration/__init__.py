"""Whole workflows over every other room: ``edgegen up`` (render, hub stand-in, device, deploy, live results)."""
