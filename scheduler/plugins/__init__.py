"""Filter and score plugins, one per module; ``registry`` names them."""
