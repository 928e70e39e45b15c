"""LiveDrop runtime: everything that ships in the Lambda zip besides app.py."""
