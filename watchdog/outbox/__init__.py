"""The outbox: firings become messages, grouped per recipient and channel, held in quiet hours."""
