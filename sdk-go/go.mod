module sykli.dev/sdk-go

go 1.21
