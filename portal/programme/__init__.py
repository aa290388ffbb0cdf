"""The programme: sessions with a chair and a room, talks placed in them, breaks, the reception."""
