module httpd

go 1.22
