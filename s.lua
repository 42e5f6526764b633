wrk.path = "http://127.0.0.1:18080/"
wrk.headers["Connection"] = "close"
