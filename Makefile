# The seed's commands, mapped onto VideosDGX. Everything goes through scripts/setup.sh and the
# vdgx CLI, so `make` is optional: see README.md.
BUILD_DIR ?= build
VDGX      := $(BUILD_DIR)/bin/vdgx
CONFIG    ?=

DATA      ?=
IMAGE     ?= videosdgx:latest

.PHONY: build base test demo up down health benchmark logs clean

build:            ## install packages (Debian 12) and build into build/bin
	./scripts/setup.sh

base:             ## the image every compose service runs ($(IMAGE)), from compose/Dockerfile
	@command -v docker >/dev/null || { echo "make base: docker is not installed; 'make build' builds on this host instead" >&2; exit 1; }
	docker build -f compose/Dockerfile -t $(IMAGE) .

test:             ## build and run the test suite (what CI runs)
	./scripts/setup.sh --test

demo:             ## build, start the stack with the tiny demo model, generate one video
	./scripts/setup.sh --demo

up: build         ## start broker, bridge and the configured workers in the background
	$(VDGX) up --detach $(if $(CONFIG),--config $(CONFIG)) $(if $(DATA),--data $(DATA))

down:             ## stop the stack started by `make up`
	$(VDGX) down $(if $(DATA),--data $(DATA))

health:           ## the coloured health check (exit status non-zero when unhealthy)
	$(VDGX) health

benchmark:        ## the seed's benchmark: jobs through the running stack
	$(VDGX) bench

logs:             ## follow the stack's logs (where `vdgx up` writes them: DATA, config or ./var)
	$(VDGX) logs $(if $(CONFIG),--config $(CONFIG)) $(if $(DATA),--data $(DATA))

clean:
	rm -rf $(BUILD_DIR)
