"""Cases and the approval workflow: a pure state machine plus Redis Streams consumers."""
