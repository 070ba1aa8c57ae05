"""The AI agent team: LLM access (OpenAI-compatible or offline), embeddings and memory, plan
decisions, approvals, the agents and the orchestrator of ``run_campaign`` / ``agent_task`` jobs.

See docs/agents.md.
"""
