"""Registration: fee categories, capacity with a waiting list, hybrid attendance."""
