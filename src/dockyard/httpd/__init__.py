"""The HTTP/1.1 server (h11) both front-ends serve on: requests, streamed answers, hijacked sockets."""
