"""The local AWS stand-in: embedded moto, HTTP and WebSocket gateways, event pumps.

Never imported by chalicelib/ (which is what ships to Lambda).
"""
