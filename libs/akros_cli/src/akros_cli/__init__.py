"""`akros`: the researchers' command line over the Akros HTTP API."""
