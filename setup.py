"""glimpse-keras: Glimpse Clouds (Baradel et al., CVPR 2018) in Keras 3 (TensorFlow or JAX)."""

import setuptools

setuptools.setup(
    name="glimpse-keras",
    version="0.1.0",
    description=(
        "Glimpse Clouds action recognition from RGB video in Keras 3 on "
        "TensorFlow or JAX: data readers, training, evaluation, export, tuning."
    ),
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["glimpse_keras", "glimpse_keras.*"]),
    package_data={"glimpse_keras": ["data/resources/*.txt"]},
    py_modules=["train", "evaluate", "tune", "export"],
    # Versions that are known to work together (see the README).
    install_requires=[
        "tensorflow-cpu==2.21.0",
        "keras==3.15.1",
        # The CPU wheel; the newest on this project's index (the GPU machine
        # runs 0.11.2 with its CUDA plugin). The tests run on JAX too.
        "jax==0.10.2",
        "keras-tuner==1.4.8",
        "tensorboard==2.21.0",
        "numpy>=2.0,<2.5",
        "av==18.1.0",
        "opencv-python-headless==5.0.0.93",
        "pillow>=10",
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.8",
        "scipy>=1.10",
        "scikit-learn>=1.3",
    ],
    extras_require={
        "test": ["pytest==9.2.0"],
    },
)
