#!/bin/sh
# Answers every request of the http-mode test function.
printf 'Content-Type: text/plain\r\n\r\n'
printf 'http-mode method=%s greeting=%s' "${REQUEST_METHOD-}" "${GREETING-}"
