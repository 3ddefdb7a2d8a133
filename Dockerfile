# A reproducible CPU environment for libselfrl: Debian 12 with every dependency from its
# packages (scripts/setup.sh), the library built and tested.
#   docker build -t libselfrl . && docker run --rm libselfrl selfrl --help
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends make ca-certificates sudo && rm -rf /var/lib/apt/lists/*
WORKDIR /src/libselfrl
COPY . .
RUN ./scripts/setup.sh && make build && cmake --install build --prefix /usr/local && ldconfig
CMD ["selfrl", "--help"]
