"""The Akros Slack app: /akros, modals, buttons, App Home and under-use DMs (slack-bolt)."""
