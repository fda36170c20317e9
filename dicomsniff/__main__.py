from .cli import entry

if __name__ == "__main__":  # not when a worker process (Dask, multiprocessing) re-imports it
    entry()
