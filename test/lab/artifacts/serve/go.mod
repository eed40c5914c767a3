module github.com/metalk8s/metalk8s/test/lab/artifacts/serve

go 1.24

require github.com/google/go-containerregistry v0.20.6

require github.com/opencontainers/go-digest v1.0.0 // indirect
