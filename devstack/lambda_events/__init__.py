"""Lambda events as AWS delivers them, built from what the embedded AWS returns.

One module per source: `dynamodb` (stream records), `sqs` (queue messages), `scheduled` (EventBridge
rules), `websocket` (API Gateway WebSocket routes). The samples they are checked against are in
tests/events/.
"""
