module github.com/licensing/licensing-go

go 1.19
