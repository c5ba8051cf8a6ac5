module sykli.dev/vectors

go 1.21

require sykli.dev/sdk-go v0.0.0

replace sykli.dev/sdk-go => ../../sdk-go
