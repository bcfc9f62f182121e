"""Build, serve and publish orchestrator for micro-frontend monorepos."""
