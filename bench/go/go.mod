module libgoroutine/bench

go 1.22
