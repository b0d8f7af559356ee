"""Stream processors that turn agency notifications into work for people."""
