"""The Akros admin dashboard: a Streamlit app over the gateway's HTTP API."""
