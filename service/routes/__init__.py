"""One router per resource: experiments, decisions, rewards, insights (read side)."""
