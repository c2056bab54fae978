"""tremolo: a stream-oriented asynchronous HTTP/1.1 server and framework."""
