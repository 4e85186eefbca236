# The gateway FROM scratch: the statically linked faas-gateway built with
# `--features swarm`. Run it as a Swarm service with the engine's socket
# mounted and the functions' network attached (see the README).
FROM scratch
COPY faas-gateway /usr/bin/faas-gateway
ENV FAAS_LISTEN=0.0.0.0:8080 \
    FAAS_PROVIDER=swarm
EXPOSE 8080
ENTRYPOINT ["/usr/bin/faas-gateway"]
